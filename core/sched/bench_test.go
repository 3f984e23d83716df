package sched

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkEnqueueDrain measures cells per second through the scheduler to a Send that does
// nothing. Cells go in bursts that fit the queues, each waited out, so no cell is dropped and the
// figure is the scheduler's throughput, not its drop rate.
func BenchmarkEnqueueDrain(b *testing.B) {
	const burst = 1024
	for _, circuits := range []int{1, 1000} {
		b.Run(fmt.Sprintf("circuits=%d", circuits), func(b *testing.B) {
			var sent, target atomic.Int64
			drained := make(chan struct{}, 1)
			s := New(Config{
				Send: func(uint64, []byte) error {
					if sent.Add(1) == target.Load() {
						drained <- struct{}{}
					}
					return nil
				},
				QueueCells: burst/circuits + 1,
			})
			defer s.Close()
			cell := make([]byte, 512)

			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; {
				n := min(burst, b.N-i)
				target.Store(int64(i + n))
				for j := range n {
					if !s.Enqueue(uint64((i+j)%circuits), cell) {
						b.Fatal("cell dropped")
					}
				}
				i += n
				<-drained
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cells/s")
		})
	}
}
